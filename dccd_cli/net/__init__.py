"""The network boundary: the HTTP client, its transport seam, rate limits and bans."""
