"""地域づくり: the area view — needs against resources per area, by month (docs/community.md)."""
