-- Where a provider's groups come from when its tokens do not carry them:
-- - `azure`: Microsoft Graph (`directory_url`, default https://graph.microsoft.com/v1.0), with the user's token;
-- - `google`: the Admin SDK Directory API (`directory_url`, default https://admin.googleapis.com/admin/directory/v1),
--   with a service account (its JSON key encrypted in `directory_secret`) acting as `directory_admin`.
ALTER TABLE providers ADD COLUMN directory_url TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN directory_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN directory_admin TEXT NOT NULL DEFAULT '';
