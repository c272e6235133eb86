-- POST /api/articles, then DELETE what was created: each thread keeps the
-- slugs its creations returned and deletes one whenever it has one, so
-- creations and deletions alternate and the table does not grow.
local created = {}
local n = 0

-- wrk.format replaces wrk.headers (the -H Authorization) when given a table.
local function with_json(headers)
  local out = {["Content-Type"] = "application/json"}
  for name, value in pairs(headers) do out[name] = value end
  return out
end

request = function()
  local slug = table.remove(created)
  if slug then
    return wrk.format("DELETE", "/api/articles/" .. slug)
  end
  n = n + 1
  local body = string.format(
    '{"article":{"title":"Load test article %d","description":"Written by the benchmark",' ..
    '"body":"A body of a few words, as a short post would have.","tagList":["bench","load-%d"]}}',
    n, n % 10)
  return wrk.format("POST", "/api/articles", with_json(wrk.headers), body)
end

response = function(status, headers, body)
  if status == 201 or status == 200 then
    local slug = body:match('"slug":"([^"]+)"')
    if slug then table.insert(created, slug) end
  end
end
