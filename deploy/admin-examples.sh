#!/usr/bin/env bash
# Every admin call, as curl. Runs top to bottom against a live gateway:
#   GATEWAY=http://127.0.0.1:8080 ADMIN_KEY=... deploy/admin-examples.sh
set -euo pipefail
GW=${GATEWAY:-http://127.0.0.1:8080}
AUTH="Authorization: Bearer ${ADMIN_KEY:?set ADMIN_KEY}"
J="Content-Type: application/json"
show() { echo "+ $*" >&2; "$@"; echo; }
# Unique names, so the script can run again against the same database.
S=$(date +%s)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# Providers: kind is openai | anthropic | gemini | mistral | groq | together | fireworks | deepseek |
# xai | openrouter | dashscope | ark | ollama | vllm | azure | openai_compatible; base_url defaults
# per kind (azure and openai_compatible need one).
P=$(curl -s -X POST "$GW/admin/providers" -H "$AUTH" -H "$J" \
      -d "{\"name\":\"openai-$S\",\"kind\":\"openai\",\"api_key\":\"sk-proj-REPLACE-ME-0000\"}")
echo "$P"; PID=$(echo "$P" | field id)
show curl -s "$GW/admin/providers" -H "$AUTH"
show curl -s "$GW/admin/providers/$PID" -H "$AUTH"
show curl -s -X PUT "$GW/admin/providers/$PID" -H "$AUTH" -H "$J" -d '{"base_url":"https://api.openai.com/v1","is_active":true}'
# A provider's own quota (a free-tier key, say): at its limit its routes are skipped like cooling ones.
show curl -s -X PUT "$GW/admin/providers/$PID" -H "$AUTH" -H "$J" -d '{"rpm":500,"rpd":10000}'

# Models: public name -> provider + upstream model name (null: the same name).
M=$(curl -s -X POST "$GW/admin/models" -H "$AUTH" -H "$J" \
      -d "{\"name\":\"gpt-4o-$S\",\"provider_id\":\"$PID\",\"provider_model_name\":\"gpt-4o-2024-08-06\"}")
echo "$M"; MID=$(echo "$M" | field id)
show curl -s "$GW/admin/models" -H "$AUTH"
show curl -s "$GW/admin/models/$MID" -H "$AUTH"
show curl -s -X PUT "$GW/admin/models/$MID" -H "$AUTH" -H "$J" -d '{"provider_model_name":null}'

# A second provider as a fallback route for the same model (priority 1: tried after the first on
# 429 / 5xx / connect errors), extra headers sent with its every request.
P2=$(curl -s -X POST "$GW/admin/providers" -H "$AUTH" -H "$J" \
      -d "{\"name\":\"openrouter-$S\",\"kind\":\"openrouter\",\"api_key\":\"sk-or-REPLACE-ME-0000\",\"extra_headers\":{\"X-Title\":\"my app\"}}")
echo "$P2"; PID2=$(echo "$P2" | field id)
R=$(curl -s -X POST "$GW/admin/models/$MID/routes" -H "$AUTH" -H "$J" \
      -d "{\"provider_id\":\"$PID2\",\"provider_model_name\":\"openai/gpt-4o\",\"priority\":1,\"weight\":1}")
echo "$R"; RID=$(echo "$R" | python3 -c "import json,sys; print(json.load(sys.stdin)['routes'][-1]['id'])")
show curl -s "$GW/admin/models/$MID/routes" -H "$AUTH"
show curl -s -X PUT "$GW/admin/models/$MID/routes/$RID" -H "$AUTH" -H "$J" -d '{"weight":3}'
show curl -s -X PUT "$GW/admin/models/$MID" -H "$AUTH" -H "$J" -d '{"strategy":"round_robin"}'
show curl -s -X DELETE "$GW/admin/models/$MID/routes/$RID" -H "$AUTH"

# User keys: the plaintext key is in the response of create and rotate only.
K=$(curl -s -X POST "$GW/admin/keys" -H "$AUTH" -H "$J" -d '{"name":"team-a"}')
echo "$K"; KID=$(echo "$K" | field id)
show curl -s "$GW/admin/keys" -H "$AUTH"
show curl -s "$GW/admin/keys/$KID" -H "$AUTH"
show curl -s -X PUT "$GW/admin/keys/$KID" -H "$AUTH" -H "$J" -d '{"name":"team-a-prod"}'
# Limit a key to some models (a trailing * is a prefix) and give it a default model.
show curl -s -X PUT "$GW/admin/keys/$KID" -H "$AUTH" -H "$J" \
      -d "{\"allowed_models\":[\"gpt-4o-$S\",\"claude-*\"],\"default_model\":\"gpt-4o-$S\"}"
# Limits and budgets (null removes one); budgets count from the last reset_usage.
show curl -s -X PUT "$GW/admin/keys/$KID" -H "$AUTH" -H "$J" \
      -d '{"rpm":60,"rpd":5000,"tpm":200000,"max_parallel":8,"token_budget":5000000,"budget_usd":25}'
show curl -s -X PUT "$GW/admin/keys/$KID" -H "$AUTH" -H "$J" -d '{"reset_usage":true,"rpd":null}'
show curl -s -X POST "$GW/admin/keys/$KID/rotate" -H "$AUTH"

# Clients use the key like an OpenAI key:
#   curl $GW/v1/chat/completions -H "Authorization: Bearer sk-..." -H "$J" \
#        -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}'

# Clean up: revoke the key, delete the model, then the provider (?force=true would also
# deactivate models still using it).
show curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$GW/admin/keys/$KID" -H "$AUTH"
show curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$GW/admin/models/$MID" -H "$AUTH"
show curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$GW/admin/providers/$PID?force=true" -H "$AUTH"
show curl -s -o /dev/null -w '%{http_code}\n' -X DELETE "$GW/admin/providers/$PID2?force=true" -H "$AUTH"
