"""The web surface: the coordinator's console (with an account) and the pages agencies open from
the links in their e-mails (without one). A FastAPI app rendered on the server with Jinja2; no
JavaScript build step, nothing from a CDN. Routes stay thin over the plain functions of casework,
conference and links; the security policy (headers, CSRF, rate limits) lives in security.py."""
