-- wrk script: POST one Open Inference Protocol request with binary tensors: a JSON header of
-- <header-length> bytes followed by the tensors, as one prepared file.
-- Usage: wrk ... -s inference_protocol.lua URL -- <header-length> <file>

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "report.lua")

function init(args)
   local header_length, path = args[1], args[2]
   assert(header_length and path, "usage: -- <header-length> <file>")
   local handle = assert(io.open(path, "rb"))
   wrk.method = "POST"
   wrk.body = handle:read("*a")
   handle:close()
   wrk.headers["Content-Type"] = "application/octet-stream"
   wrk.headers["Inference-Header-Content-Length"] = header_length
end
