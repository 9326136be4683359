-- Who signed in before deciding, where the release's policy requires approvers
-- to sign in (OpenID Connect): the provider (`iss`), the person there (`sub`)
-- and the address that matched the approver. NULL for decisions by link alone.

ALTER TABLE approval ADD COLUMN signed_in_issuer TEXT;
ALTER TABLE approval ADD COLUMN signed_in_subject TEXT;
ALTER TABLE approval ADD COLUMN signed_in_email TEXT;
