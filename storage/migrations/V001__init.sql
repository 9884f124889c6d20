-- Initial schema. Rows are soft-deleted (deleted_at) so audit trails and foreign keys survive;
-- uniqueness of public names therefore only holds among live rows (partial unique indexes).

CREATE TABLE providers (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name            text NOT NULL,
  kind            text NOT NULL,
  base_url        text NOT NULL,
  api_key_enc     text,            -- base64(nonce || ciphertext || tag); NULL when no key
  api_key_preview text,            -- e.g. "sk-p...wxyz"; NULL when no key
  is_active       boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  deleted_at      timestamptz
);
CREATE UNIQUE INDEX providers_name_live_key ON providers (name) WHERE deleted_at IS NULL;

CREATE TABLE models (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                text NOT NULL,   -- public name clients send as "model"
  provider_id         uuid NOT NULL REFERENCES providers (id),
  provider_model_name text,            -- NULL -> same as name
  is_active           boolean NOT NULL DEFAULT true,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  deleted_at          timestamptz
);
-- Also serves the hot-path route lookup by public model name.
CREATE UNIQUE INDEX models_name_live_key ON models (name) WHERE deleted_at IS NULL;
-- Deleting a provider counts / deactivates the live models that use it.
CREATE INDEX models_provider_live_idx ON models (provider_id) WHERE deleted_at IS NULL;

CREATE TABLE user_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL,
  key_hash     char(64) NOT NULL UNIQUE,   -- hex SHA-256 of the key; the unique index serves auth
  key_prefix   text NOT NULL,
  is_active    boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
-- Warming the auth cache reads every usable key's hash.
CREATE INDEX user_keys_usable_idx ON user_keys (key_hash) WHERE is_active AND revoked_at IS NULL;
