-- Pipelining for wrk: each write carries DEPTH requests back to back (default 16), and wrk
-- counts every response. Used by `cargo xtask bench`:
--   wrk -t1 -c100 -d10s --latency -s benches/wrk/pipeline.lua http://127.0.0.1:8080/ -- 16
-- The latency wrk reports is per response but measured from the start of the batch.

init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  request_batch = table.concat(batch)
end

request = function()
  return request_batch
end
