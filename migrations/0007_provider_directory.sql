-- Where a provider's groups come from when its tokens do not carry them: Microsoft Graph for `azure`
-- (default https://graph.microsoft.com/v1.0). Empty: the kind's default.
ALTER TABLE providers ADD COLUMN directory_url TEXT NOT NULL DEFAULT '';
