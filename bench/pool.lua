-- wrk script: POSTs a form whose last parameter comes from a pool file, one line per request
-- (single-use credentials: authorization codes, rotating refresh tokens). Each wrk thread
-- takes every Nth line. Arguments after "--": POOL_FILE THREADS PREFIX [AUTHORIZATION]
-- (PREFIX is the form up to the pooled value, e.g. "grant_type=refresh_token&refresh_token=").
local n = 0
function setup(thread)
  thread:set("tid", n)
  n = n + 1
end

local pool, i, prefix, auth = {}, 0, "", nil
function init(args)
  local every = tonumber(args[2])
  prefix = args[3]
  auth = args[4]
  local k = 0
  for line in io.lines(args[1]) do
    if k % every == tid then pool[#pool + 1] = line end
    k = k + 1
  end
end

function request()
  i = i + 1
  local v = pool[i] or "pool-exhausted"
  local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if auth then h["Authorization"] = auth end
  return wrk.format("POST", "/oauth/v2/token", h, prefix .. v)
end
