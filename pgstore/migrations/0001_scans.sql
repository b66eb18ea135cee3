-- Scan facts: one row per key (d:<digest>, r:<repository:tag>), the newest
-- scan by its own time (nanoseconds since the epoch). seq numbers every
-- write, so replicas load only what changed; writers take an advisory lock
-- first, so seq order is commit order and no reader skips a write.
CREATE SEQUENCE imagegate_scan_seq;

CREATE TABLE imagegate_scans (
    key        text   PRIMARY KEY,
    scanned_ns bigint NOT NULL,
    record     jsonb  NOT NULL,
    seq        bigint NOT NULL
);
CREATE INDEX imagegate_scans_seq ON imagegate_scans (seq);

-- Malicious marks: a cleared mark stays as a row (marked false) so that
-- replicas learn it was cleared.
CREATE TABLE imagegate_malicious (
    digest  text        PRIMARY KEY,
    reason  text        NOT NULL,
    marked  boolean     NOT NULL,
    seq     bigint      NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imagegate_malicious_seq ON imagegate_malicious (seq);
