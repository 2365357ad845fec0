-- Each sector's OpenTelemetry root context (a W3C traceparent), made at allocation, so
-- every later step on every host joins the sector's one trace.
CREATE TABLE sector_traces (
    miner BIGINT NOT NULL,
    number BIGINT NOT NULL,
    traceparent TEXT NOT NULL,
    PRIMARY KEY (miner, number)
);
