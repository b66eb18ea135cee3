-- Audit events of every replica and cluster, partitioned by day on the
-- event time; retention drops whole partitions. id is the 16-byte
-- time-ordered event id: its order is the query order and the page token.
CREATE TABLE imagegate_audit_events (
    id         bytea       NOT NULL,
    at         timestamptz NOT NULL,
    cluster_id text        NOT NULL,
    type       text        NOT NULL,
    namespace  text        NOT NULL,
    actions    text[]      NOT NULL,
    repos      text[]      NOT NULL,
    principal  text        NOT NULL,
    api_action text        NOT NULL,
    event      jsonb       NOT NULL,
    PRIMARY KEY (at, id)
) PARTITION BY RANGE (at);

CREATE INDEX imagegate_audit_events_id ON imagegate_audit_events (id);
CREATE INDEX imagegate_audit_events_type ON imagegate_audit_events (type, id);
CREATE INDEX imagegate_audit_events_namespace ON imagegate_audit_events (namespace, id);
CREATE INDEX imagegate_audit_events_principal ON imagegate_audit_events (principal, id);
CREATE INDEX imagegate_audit_events_api_action ON imagegate_audit_events (api_action, id);
CREATE INDEX imagegate_audit_events_actions ON imagegate_audit_events USING gin (actions);
