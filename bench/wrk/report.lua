-- Shared by the upload scripts: counts responses by HTTP status in each wrk thread and, when
-- the run ends, prints one line "BENCH_RESULT <json>" that bench/wrk_load.py parses.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Each thread counts its own responses by status; done() adds the counts up.
status_counts = {}

function response(status, headers, body)
   status_counts[status] = (status_counts[status] or 0) + 1
end

local function json_object(entries)
   local parts = {}
   for _, entry in ipairs(entries) do
      table.insert(parts, string.format("%q:%s", entry[1], entry[2]))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("status_counts")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local statuses = {}
   for status, count in pairs(totals) do
      table.insert(statuses, {tostring(status), string.format("%d", count)})
   end
   local errors = summary.errors
   local result = json_object({
      {"requests", string.format("%d", summary.requests)},
      {"duration_us", string.format("%d", summary.duration)},
      {"bytes", string.format("%d", summary.bytes)},
      {"errors", json_object({
         {"connect", string.format("%d", errors.connect)},
         {"read", string.format("%d", errors.read)},
         {"write", string.format("%d", errors.write)},
         {"status", string.format("%d", errors.status)},
         {"timeout", string.format("%d", errors.timeout)},
      })},
      {"status_counts", json_object(statuses)},
      {"latency_us", json_object({
         {"min", string.format("%.0f", latency.min)},
         {"mean", string.format("%.1f", latency.mean)},
         {"p50", string.format("%.0f", latency:percentile(50))},
         {"p90", string.format("%.0f", latency:percentile(90))},
         {"p99", string.format("%.0f", latency:percentile(99))},
         {"max", string.format("%.0f", latency.max)},
      })},
   })
   io.write("BENCH_RESULT ", result, "\n")
end
