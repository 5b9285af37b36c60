"""Cases and conferences: open, route, choose the conference type, book a meeting, propose a lead."""
