-- wrk script: the same form POST to the token endpoint on every request (client_credentials).
-- Arguments after "--": BODY [AUTHORIZATION [PATH]]   (PATH defaults to /oauth/v2/token)
local body, auth, path
function init(args)
  body = args[1]
  auth = args[2]
  path = args[3] or "/oauth/v2/token"
end
function request()
  local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if auth then h["Authorization"] = auth end
  return wrk.format("POST", path, h, body)
end
