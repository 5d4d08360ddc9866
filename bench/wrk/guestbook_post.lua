-- wrk script: sign the guestbook (POST application/x-www-form-urlencoded). Each request carries a distinct name,
-- so that the rows written can be counted afterwards. spawnd-bench appends it to report.lua (the `write` workload),
-- which sets `id` per thread and reads posts_sent / posts_ok when wrk is done.
--   cat bench/wrk/report.lua bench/wrk/guestbook_post.lua > /tmp/post.lua
--   wrk -t2 -c16 -d10s -s /tmp/post.lua http://127.0.0.1:8080/cgi-bin/guestbook
posts_sent = 0
posts_ok = 0

function request()
  posts_sent = posts_sent + 1
  local body = "name=wrk" .. (id or 0) .. "-" .. posts_sent .. "&message=benchmark+entry+" .. posts_sent
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  if status == 303 then posts_ok = posts_ok + 1 end
end
