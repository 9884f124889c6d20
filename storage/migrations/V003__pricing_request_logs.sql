-- Prices, the request log (partitioned by day, old days dropped), and per-key daily usage totals.

-- USD per million tokens; NULL = unknown (cost stays NULL). A route's price overrides its model's.
ALTER TABLE models ADD COLUMN price_input numeric, ADD COLUMN price_output numeric,
                   ADD COLUMN price_cached_input numeric;
ALTER TABLE model_routes ADD COLUMN price_input numeric, ADD COLUMN price_output numeric,
                         ADD COLUMN price_cached_input numeric;

-- One row per /v1 request of an authenticated key. Never a body. Partitions (request_logs_YYYYMMDD)
-- are created ahead and dropped after LOG_RETENTION_DAYS by the gateway's log writer.
CREATE TABLE request_logs (
  id                    bigserial,
  request_id            text NOT NULL,
  upstream_request_id   text,
  key_id                uuid,
  model                 text,
  provider              text,
  upstream_model        text,
  status                smallint NOT NULL,
  error_code            text,
  prompt_tokens         integer NOT NULL DEFAULT 0,
  completion_tokens     integer NOT NULL DEFAULT 0,
  cached_tokens         integer NOT NULL DEFAULT 0,
  cache_creation_tokens integer NOT NULL DEFAULT 0,
  total_tokens          integer NOT NULL DEFAULT 0,
  cost                  numeric,        -- USD; NULL when a price is unknown
  latency_ms            real NOT NULL,
  ttft_ms               real,           -- first body byte to the client; NULL when none went out
  is_stream             boolean NOT NULL DEFAULT false,
  attempts              smallint NOT NULL DEFAULT 0,
  client_addr           text,
  created_at            timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
CREATE INDEX request_logs_created_idx ON request_logs (created_at DESC, id DESC);
CREATE INDEX request_logs_key_idx ON request_logs (key_id, created_at DESC);
CREATE INDEX request_logs_model_idx ON request_logs (model, created_at DESC);

-- Kept forever (small: keys x days), so a key's totals survive the log's retention.
CREATE TABLE usage_daily (
  key_id            uuid NOT NULL,
  day               date NOT NULL,
  requests          bigint NOT NULL DEFAULT 0,
  errors            bigint NOT NULL DEFAULT 0,
  prompt_tokens     bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cached_tokens     bigint NOT NULL DEFAULT 0,
  total_tokens      bigint NOT NULL DEFAULT 0,
  cost              numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, day)
);
