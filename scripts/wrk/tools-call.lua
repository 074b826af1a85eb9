-- wrk script: tools/call in one MCP session (SESSION from the environment), a new id per call.
local session = os.getenv("SESSION")
local tool = os.getenv("TOOL") or "echo"
local arguments = os.getenv("ARGUMENTS") or '{"message":"hi"}'
local counter = 0

request = function()
  counter = counter + 1
  local body = '{"jsonrpc":"2.0","id":' .. counter .. ',"method":"tools/call","params":{"name":"'
    .. tool .. '","arguments":' .. arguments .. '}}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Session-Id"] = session,
  }, body)
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    wrk.thread:stop()
    io.stderr:write("bad answer: " .. status .. " " .. body .. "\n")
  end
end
