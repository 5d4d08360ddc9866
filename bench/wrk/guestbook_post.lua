-- wrk script: sign the guestbook (POST application/x-www-form-urlencoded). Each request carries a distinct name,
-- so that the rows written can be counted afterwards.
--   wrk -t2 -c16 -d10s -s bench/wrk/guestbook_post.lua http://127.0.0.1:8080/cgi-bin/guestbook
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local body = "name=wrk" .. id .. "-" .. counter .. "&message=benchmark+entry+" .. counter
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
