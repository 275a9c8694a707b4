"""The web service: aiohttp routes, server-rendered pages and local static assets."""
