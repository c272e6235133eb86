-- POST /api/users/login, rotating over the generated users (BENCH_LOGIN_USERS,
-- comma-separated usernames; every one has BENCH_LOGIN_PASSWORD).
local users = {}
for name in string.gmatch(os.getenv("BENCH_LOGIN_USERS") or "", "[^,]+") do
  table.insert(users, name)
end
local password = os.getenv("BENCH_LOGIN_PASSWORD") or "bench-password"
local i = 0

request = function()
  i = i % #users + 1
  local body = string.format('{"user":{"email":"%s@bench.conduit.example","password":"%s"}}', users[i], password)
  return wrk.format("POST", "/api/users/login", {["Content-Type"] = "application/json"}, body)
end
