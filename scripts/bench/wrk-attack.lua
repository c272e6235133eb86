-- An attacker: every request either registers a new account (a hash each)
-- or logs in to a generated user with a wrong password, as fast as the
-- connection allows; with BENCH_ATTACK_MODE=password-change, every request
-- is a password change of the account whose token wrk sends. Counts the
-- answers by status, per thread, summed in extra_done (called by
-- wrk-report.lua's done).
local users = {}
for name in string.gmatch(os.getenv("BENCH_LOGIN_USERS") or "", "[^,]+") do
  table.insert(users, name)
end
local prefix = os.getenv("BENCH_ATTACK_PREFIX") or "attacker"
local changes_passwords = os.getenv("BENCH_ATTACK_MODE") == "password-change"
local threads = {}
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

init = function(args)
  n = 0
  s2xx, s401, s409, s429, s503, other = 0, 0, 0, 0, 0, 0
end

request = function()
  n = n + 1
  if changes_passwords then
    local body = string.format('{"user":{"password":"flood-%d-%d"}}', id, n)
    -- A headers table replaces wrk.headers: the token (-H) goes in it too.
    local headers = {["Content-Type"] = "application/json"}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    return wrk.format("PUT", "/api/user", headers, body)
  end
  if n % 2 == 0 then
    local name = string.format("%s-%d-%d", prefix, id, n)
    local body = string.format('{"user":{"username":"%s","email":"%s@attack.example","password":"attack-password"}}', name, name)
    return wrk.format("POST", "/api/users", {["Content-Type"] = "application/json"}, body)
  end
  local user = users[(n % #users) + 1]
  local body = string.format('{"user":{"email":"%s@bench.conduit.example","password":"wrong-%d"}}', user, n)
  return wrk.format("POST", "/api/users/login", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status < 300 then s2xx = s2xx + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 409 then s409 = s409 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else other = other + 1 end
end

function extra_done(summary, latency, requests)
  local total = {s2xx = 0, s401 = 0, s409 = 0, s429 = 0, s503 = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + (thread:get(key) or 0)
    end
  end
  io.write(string.format(
    '\nBENCH_STATUS {"2xx":%d,"401":%d,"409":%d,"429":%d,"503":%d,"other":%d}\n',
    total.s2xx, total.s401, total.s409, total.s429, total.s503, total.other))
end
