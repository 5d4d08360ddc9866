-- wrk script: the `mixed` workload, 90% guestbook reads and 10% signings: every tenth request of a thread is a POST
-- as in guestbook_post.lua, the others GET the page. Appended to report.lua by spawnd-bench, like guestbook_post.lua.
posts_sent = 0
posts_ok = 0
local n = 0

function request()
  n = n + 1
  if n % 10 ~= 0 then return wrk.format("GET") end
  posts_sent = posts_sent + 1
  local body = "name=wrk" .. (id or 0) .. "-" .. posts_sent .. "&message=benchmark+entry+" .. posts_sent
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  if status == 303 then posts_ok = posts_ok + 1 end
end
