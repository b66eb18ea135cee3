-- Pages are read newest first by (at, id), the partition key first: at is
-- the time at the head of id, to the microsecond, so the order is id's,
-- and a page touches only the newest partitions that fill it. Each filter
-- index ends in (at, id) so that a filtered page is read in that order
-- too. The indexes of API calls' fields hold API calls only (a few in a
-- hundred events); actions, of which there are five, are filtered on the
-- way rather than indexed. Every admission thus costs its write three
-- index entries, not seven.
DROP INDEX imagegate_audit_events_id;
DROP INDEX imagegate_audit_events_type;
DROP INDEX imagegate_audit_events_namespace;
DROP INDEX imagegate_audit_events_principal;
DROP INDEX imagegate_audit_events_api_action;
DROP INDEX imagegate_audit_events_actions;
CREATE INDEX imagegate_audit_events_namespace_at ON imagegate_audit_events (namespace, at, id) WHERE type <> 'api';
CREATE INDEX imagegate_audit_events_api_at ON imagegate_audit_events (at, id) WHERE type = 'api';
CREATE INDEX imagegate_audit_events_principal_at ON imagegate_audit_events (principal, at, id) WHERE type = 'api';
CREATE INDEX imagegate_audit_events_api_action_at ON imagegate_audit_events (api_action, at, id) WHERE type = 'api';

-- Image filters: the repositories of the events' images, found through
-- this index; a glob is first matched against every repository ever
-- written (imagegate_audit_repos, kept by the writers in the transaction
-- of the events), and the page then asks for those.
CREATE INDEX imagegate_audit_events_repos ON imagegate_audit_events USING gin (repos);
CREATE TABLE imagegate_audit_repos (repo text PRIMARY KEY);
INSERT INTO imagegate_audit_repos SELECT DISTINCT unnest(repos) FROM imagegate_audit_events ON CONFLICT DO NOTHING;
