-- wrk script: POST a multipart/form-data body with one "file" part per image file.
-- Usage: wrk ... -s multipart.lua URL -- <content-type> <file> [<file> ...]
-- Several files make several parts named "file", as POST /predict/batch expects.

local script_dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(script_dir .. "report.lua")

local boundary = "----mnistbenchboundary7d91c2"

local function read_file(path)
   local handle = assert(io.open(path, "rb"))
   local data = handle:read("*a")
   handle:close()
   return data
end

function init(args)
   local content_type = args[1]
   assert(content_type and args[2], "usage: -- <content-type> <file> [<file> ...]")
   local parts = {}
   for index = 2, #args do
      local filename = args[index]:match("([^/]+)$")
      table.insert(parts, "--" .. boundary .. "\r\n"
         .. 'Content-Disposition: form-data; name="file"; filename="' .. filename .. '"\r\n'
         .. "Content-Type: " .. content_type .. "\r\n\r\n"
         .. read_file(args[index]) .. "\r\n")
   end
   table.insert(parts, "--" .. boundary .. "--\r\n")
   wrk.method = "POST"
   wrk.body = table.concat(parts)
   wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end
