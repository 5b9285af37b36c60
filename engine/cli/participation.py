"""参加支援's referral loop from the command line: `engine refer`, `engine referral`, `engine followup`,
`engine referrals` (answers given by telephone, referrals decided after the conference)."""

from __future__ import annotations

import typer

commands = typer.Typer()
