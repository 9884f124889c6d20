-- Per-key limits and budgets, per-provider limits. NULL = unlimited. Counting requests and tokens
-- per minute / day happens in Redis; PostgreSQL keeps the limits and what each budget has used.

ALTER TABLE user_keys ADD COLUMN rpm bigint CHECK (rpm > 0),            -- requests per minute
                      ADD COLUMN rpd bigint CHECK (rpd > 0),            -- requests per UTC day
                      ADD COLUMN tpm bigint CHECK (tpm > 0),            -- tokens per minute
                      ADD COLUMN token_budget bigint CHECK (token_budget > 0),
                      ADD COLUMN max_parallel bigint CHECK (max_parallel > 0),
                      ADD COLUMN budget_usd numeric CHECK (budget_usd >= 0),
                      -- Budgets count the requests made since then (PUT reset_usage moves it).
                      ADD COLUMN budget_reset_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE providers ADD COLUMN rpm bigint CHECK (rpm > 0),
                      ADD COLUMN rpd bigint CHECK (rpd > 0);

-- What a key has used since its budget_reset_at: added to by the log writer in the same statement
-- as the request log rows (those created at or after budget_reset_at), zeroed by a reset. Kept for
-- every key the log names that exists in user_keys, with or without a budget.
CREATE TABLE key_budget_usage (
  key_id    uuid PRIMARY KEY,
  tokens    bigint NOT NULL DEFAULT 0,
  micro_usd bigint NOT NULL DEFAULT 0   -- cost in millionths of a USD, each row's rounded
);
