-- wrk script for the manifest load: round-robin over the URL paths listed in a file (one a line),
-- each thread starting at its own offset, with the Accept header of the OCI and Docker manifest types.
-- Usage: wrk -t2 -c32 -d8s --latency -s manifests.lua http://HOST:PORT -- PATHS_FILE [METHOD]
-- done() prints one line "WRK_JSON {...}" with the counts and latency percentiles in microseconds.
local accept = table.concat({
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

local threads = 0
local paths = {}
local method = "GET"
local idx = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  method = args[2] or "GET"
  idx = (tonumber(offset) or 0) * 7
end

function request()
  idx = idx % #paths + 1
  return wrk.format(method, paths[idx], { ["Accept"] = accept })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
