-- wrk script: the same form POST to the token endpoint on every request (client_credentials).
-- Arguments after "--": BODY [AUTHORIZATION]
local body, auth
function init(args)
  body = args[1]
  auth = args[2]
end
function request()
  local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if auth then h["Authorization"] = auth end
  return wrk.format("POST", "/oauth/v2/token", h, body)
end
