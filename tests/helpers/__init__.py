"""What several test modules share (fixtures are in tests/conftest.py and the subfolders' conftest.py):

paths.py         the repository root, the shipped rules and configuration folders
town.py          hand-written households inserted straight into a workspace database
casework.py      an 8050 case booked into a 支援会議 and the ways to drive its lifecycle
conference.py    the nightly cycle with the file transport, a case's conference, registry edits
mail.py          reading the e-mails the file transport wrote
smtp.py          an SMTP sink on loopback (aiosmtpd), also with TLS and a login, and a configuration sending to it
certs.py         a test CA and the server certificates it signs, expired, self-signed or for another host
faulty_smtp.py   SMTP servers that misbehave on command; mail_checks.py what the fault tests assert
served.py        a real local server: a free port, the Prefect API, waiting for a condition
reference.py     the plain-Python reference evaluator of the rule semantics (tests and bench/screen.py)
random_towns.py  hypothesis strategies: random households and random rule sets
configs.py       a copy of configs/ with edits, and the problems load_config reports for it
extracts.py      the small silo extract the import tests start from
cli.py           the lifecycle commands of the CLI as a coordinator types them
demo.py          `engine demo` on a small town, and the scan of what it e-mailed
"""
