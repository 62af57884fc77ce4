-- wrk script: POST one image file as the raw request body with an image/* Content-Type.
-- Usage: wrk ... -s raw_body.lua URL -- <content-type> <file>

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "report.lua")

function init(args)
   local content_type, path = args[1], args[2]
   assert(content_type and path, "usage: -- <content-type> <file>")
   local handle = assert(io.open(path, "rb"))
   wrk.method = "POST"
   wrk.body = handle:read("*a")
   handle:close()
   wrk.headers["Content-Type"] = content_type
end
