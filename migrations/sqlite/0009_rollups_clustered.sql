-- The rollups, kept in the order charts read them (issue 11: the 24-hour chart of one
-- integration read its 1,440 one-minute rows from 1,440 different pages, since rows were stored
-- in the order they were written, every integration's minute beside the others'; with 10,000
-- integrations that read was the slow part of a chart, p99 177 ms under load, measured with
-- `benches/chart.rs`).
--
-- A table WITHOUT ROWID is stored in the order of its primary key: one integration's rows of one
-- resolution now lie side by side, a day of minutes in a few dozen pages. The old primary key's
-- order (resolution, bucket) stays as an index, for the reads across every integration (the
-- 24-hour figures of the full list) and for retention. The columns are unchanged.
CREATE TABLE rollups_clustered (
    integration TEXT    NOT NULL,
    resolution  INTEGER NOT NULL,
    bucket      BIGINT  NOT NULL,
    count       BIGINT  NOT NULL,
    failures    BIGINT  NOT NULL,
    latency_sum DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    h0 BIGINT NOT NULL, h1 BIGINT NOT NULL, h2 BIGINT NOT NULL, h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL, h5 BIGINT NOT NULL, h6 BIGINT NOT NULL, h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL, h9 BIGINT NOT NULL, h10 BIGINT NOT NULL, h11 BIGINT NOT NULL,
    h12 BIGINT NOT NULL, h13 BIGINT NOT NULL,
    PRIMARY KEY (integration, resolution, bucket)
) WITHOUT ROWID;

INSERT INTO rollups_clustered
SELECT integration, resolution, bucket, count, failures, latency_sum, latency_min, latency_max,
       h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13
FROM rollups ORDER BY integration, resolution, bucket;

DROP TABLE rollups;
ALTER TABLE rollups_clustered RENAME TO rollups;
CREATE INDEX rollups_by_bucket ON rollups (resolution, bucket);
