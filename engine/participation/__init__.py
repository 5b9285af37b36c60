"""参加支援 (participation): the resource directory of local places and its matching rules, the
places proposed for each person with the reason, referrals whose loop the places close from the
link in their e-mail, and the follow-up of both sides after the match. docs/participation.md."""
