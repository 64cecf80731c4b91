-- wrk script: POST /oauth/v2/token spending one fresh grant per request: an authorization
-- code (BENCH_GRANT=code, the default) or a refresh token (BENCH_GRANT=refresh).
-- Environment: BENCH_CODES (file, one code or refresh token per line), BENCH_AUTH (Basic
-- credentials), BENCH_REDIRECT (redirect_uri, url-encoded). Each wrk thread takes every n-th.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local n = #threads > 0 and #threads or tonumber(os.getenv("BENCH_THREADS") or "2")
  codes = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_CODES")) do
    i = i + 1
    if (i % n) == (id % n) then codes[#codes + 1] = line end
  end
  next_code = 1
  auth = os.getenv("BENCH_AUTH")
  redirect = os.getenv("BENCH_REDIRECT")
  grant = os.getenv("BENCH_GRANT") or "code"
end

function request()
  local code = codes[next_code] or "exhausted"
  next_code = next_code + 1
  local body
  if grant == "refresh" then
    body = "grant_type=refresh_token&refresh_token=" .. code
  else
    body = "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect
  end
  return wrk.format("POST", "/oauth/v2/token",
    {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth}, body)
end

statuses = {}
first_error = nil

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and not first_error then first_error = status .. " " .. body:sub(1, 160) end
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do all[k] = (all[k] or 0) + v end
    local fe = t:get("first_error")
    if fe then io.write("first non-200: ", fe, "\n") end
  end
  for k, v in pairs(all) do io.write("status ", k, ": ", v, "\n") end
end
