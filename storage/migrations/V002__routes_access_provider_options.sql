-- Several routes per model (failover, round robin), per-key model access, provider options.

CREATE TABLE model_routes (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  model_id            uuid NOT NULL REFERENCES models (id),
  provider_id         uuid NOT NULL REFERENCES providers (id),
  provider_model_name text,            -- NULL -> the model's public name
  priority            integer NOT NULL DEFAULT 0,
  weight              integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000000),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  deleted_at          timestamptz
);
-- The hot path reads a model's live routes in order; deleting a provider finds its routes.
CREATE INDEX model_routes_model_live_idx ON model_routes (model_id, priority, created_at)
  WHERE deleted_at IS NULL;
CREATE INDEX model_routes_provider_live_idx ON model_routes (provider_id) WHERE deleted_at IS NULL;

-- Every existing model keeps its one route.
INSERT INTO model_routes (model_id, provider_id, provider_model_name, created_at, updated_at)
  SELECT id, provider_id, provider_model_name, created_at, created_at FROM models WHERE deleted_at IS NULL;

-- models.provider_id / provider_model_name now mirror the model's first route (kept up to date in
-- the same transaction as every route change), so replicas of the previous version keep routing
-- during a rolling upgrade. A later migration can drop them.
ALTER TABLE models ADD COLUMN strategy text NOT NULL DEFAULT 'priority'
  CHECK (strategy IN ('priority', 'round_robin'));

ALTER TABLE providers ADD COLUMN extra_headers_enc text,   -- sealed JSON [[name, value], ...]
                      ADD COLUMN extra_header_names text[] NOT NULL DEFAULT '{}',
                      ADD COLUMN api_version text;

ALTER TABLE user_keys ADD COLUMN allowed_models text[] NOT NULL DEFAULT '{}',
                      ADD COLUMN default_model text;
