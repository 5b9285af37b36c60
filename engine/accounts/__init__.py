"""The coordinators' accounts of the console: users with a role and an argon2 password hash
(users.py, passwords.py), server-side sessions (sessions.py) and the lock-out after repeated
failed logins. Tables `users` and `sessions` (migration 4)."""
