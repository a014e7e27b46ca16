-- Pipelined load: every write carries DEPTH requests (wrk ... -s pipeline.lua URL -- DEPTH),
-- so one wrk thread can outrun the server and the server's own limit shows. Reports through
-- report.lua's done(), the same JSON object.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local batch

init = function(args)
  local depth = tonumber(args[1] or "16")
  if depth == nil or depth < 1 then
    error("pipeline depth must be a positive number, got " .. tostring(args[1]))
  end
  batch = string.rep(wrk.format(), depth)
end

request = function()
  return batch
end
