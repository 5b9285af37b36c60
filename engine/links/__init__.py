"""Answer links: every e-mail that asks an agency something carries one link per question,
BASE_URL/a/TOKEN, that the agency answers without an account (docs/web.md, "Answer links").

    tokens.py     minted when the e-mail is sent (only the hash is stored), revoked when re-sent
    questions.py  what a link asks, its state, its choices and what the page may show
    answers.py    the answer, once, through the same plain functions as the CLI

The API the web pages call: Question, Choice, lookup, answer, open_questions and the errors.
"""

from engine.links.answers import AnswerRefused, LinkExpired, LinkRevoked, LinkUsed, answer, record_attendance
from engine.links.questions import Choice, LinkNotFound, Question, lookup, open_questions
from engine.links.tokens import fill_links, link_url, token_hash

__all__ = [
    "AnswerRefused",
    "Choice",
    "LinkExpired",
    "LinkNotFound",
    "LinkRevoked",
    "LinkUsed",
    "Question",
    "answer",
    "fill_links",
    "link_url",
    "lookup",
    "open_questions",
    "record_attendance",
    "token_hash",
]
