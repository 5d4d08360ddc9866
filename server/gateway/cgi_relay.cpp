#include "server/gateway/cgi_relay.h"

#include <algorithm>
#include <utility>

namespace spawnd::server {

namespace {

// Output is fed to the header parser at most this much at a time, so that a large first read or an in-process
// handler's whole output is not copied into the parser's buffer: only the header block and what shares its last
// chunk are.
constexpr std::size_t kHeadChunkBytes = 4096;

std::string short_body(std::uint64_t sent, std::uint64_t announced) {
  return "sent " + std::to_string(sent) + " of the " + std::to_string(announced) + " body bytes it announced";
}

}  // namespace

CgiOutputRelay::CgiOutputRelay(ResponseSink& sink, std::size_t max_header_bytes, bool is_head_request, bool is_nph)
    : sink_(sink),
      max_header_bytes_(max_header_bytes),
      is_head_request_(is_head_request),
      is_nph_(is_nph),
      parser_(max_header_bytes) {}

CgiOutputRelay::Step CgiOutputRelay::feed(std::string_view bytes) {
  switch (phase_) {
    case Phase::Head: return is_nph_ ? feed_nph_head(bytes) : feed_head(bytes);
    case Phase::Body: return feed_body(bytes);
    case Phase::Raw: return bytes.empty() ? Step::More : forward(sink_.on_raw(bytes));
    case Phase::Done: return Step::Complete;
    case Phase::Failed: return Step::BadGateway;
  }
  return Step::More;
}

CgiOutputRelay::Step CgiOutputRelay::feed_head(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::string_view chunk = bytes.substr(0, std::min(bytes.size(), kHeadChunkBytes));
    bytes.remove_prefix(chunk.size());
    switch (parser_.feed(chunk)) {
      case CgiResponseParser::State::NeedMore: continue;
      case CgiResponseParser::State::Error: return fail("bad response header: " + parser_.error());
      case CgiResponseParser::State::Done: break;
    }
    CgiHead& h = parser_.head();
    if (h.kind == CgiResponseKind::LocalRedirect) {
      phase_ = Phase::Done;
      has_head_ = true;
      is_redirected_ = true;
      sink_.on_local_redirect(std::move(h.location));
      return Step::Complete;
    }
    if (!is_head_request_) announced_bytes_ = h.content_length;
    if (is_whole_ && announced_bytes_ && parser_.rest_of_input().size() + bytes.size() < *announced_bytes_) {
      return fail(short_body(parser_.rest_of_input().size() + bytes.size(), *announced_bytes_));
    }
    ResponseHead head;
    head.status = h.status;
    head.reason = std::move(h.reason);
    head.fields = std::move(h.fields);
    head.content_length = h.content_length;
    phase_ = Phase::Body;
    has_head_ = true;
    sink_.on_head(std::move(head));
    // The body's first bytes: what the parser read past the header block, then the rest of this output.
    // A sink that is full (Paused) still takes bytes already read; it only asks for no more reads.
    const Step first = feed_body(parser_.rest_of_input());
    if (bytes.empty() || first == Step::Complete || first == Step::SinkClosed) return first;
    const Step second = feed_body(bytes);
    return first == Step::Paused && second == Step::More ? Step::Paused : second;
  }
  return Step::More;
}

CgiOutputRelay::Step CgiOutputRelay::feed_nph_head(std::string_view bytes) {
  nph_head_.append(bytes);
  const std::size_t lf = nph_head_.find('\n');
  if (lf == std::string::npos) {
    if (nph_head_.size() <= max_header_bytes_) return Step::More;
    return fail("NPH script sent no status-line in its first " + std::to_string(max_header_bytes_) + " bytes");
  }
  const std::optional<int> status = parse_status_line(std::string_view(nph_head_).substr(0, lf));
  if (!status || !is_final_status(*status)) {
    return fail(status ? "NPH script's first line: Status " + std::to_string(*status) +
                             ", not a final status (only 200-599 are relayed)"
                       : std::string("NPH script's first line: not an HTTP status-line"));
  }
  phase_ = Phase::Raw;
  has_head_ = true;
  const std::string head = std::exchange(nph_head_, std::string());
  return forward(sink_.on_raw(head));
}

CgiOutputRelay::Step CgiOutputRelay::feed_body(std::string_view bytes) {
  if (announced_bytes_) {
    // Never more than the Content-Length the handler announced.
    const std::uint64_t room = *announced_bytes_ - relayed_bytes_;
    if (bytes.size() > room) bytes = bytes.substr(0, static_cast<std::size_t>(room));
  }
  relayed_bytes_ += bytes.size();
  Step step = Step::More;
  if (!bytes.empty()) step = forward(sink_.on_body(bytes));
  if (step == Step::SinkClosed) return step;
  if (announced_bytes_ && relayed_bytes_ == *announced_bytes_) {
    // The whole announced body is here: the response is complete now, not when the handler gets round to ending (a
    // CGI child may still be closing its database).
    phase_ = Phase::Done;
    return Step::Complete;
  }
  return step;
}

CgiOutputRelay::Step CgiOutputRelay::end() {
  switch (phase_) {
    case Phase::Head: return fail("its output ended before a complete header block");
    case Phase::Body:
      if (announced_bytes_ && relayed_bytes_ < *announced_bytes_) {
        return fail(short_body(relayed_bytes_, *announced_bytes_));
      }
      phase_ = Phase::Done;
      return Step::Complete;
    case Phase::Raw: phase_ = Phase::Done; return Step::Complete;
    case Phase::Done: return Step::Complete;
    case Phase::Failed: return Step::BadGateway;
  }
  return Step::Complete;
}

CgiOutputRelay::Step CgiOutputRelay::relay_whole(std::string_view output) {
  is_whole_ = true;
  const Step step = feed(output);
  return step == Step::More || step == Step::Paused ? end() : step;
}

CgiOutputRelay::Step CgiOutputRelay::forward(Io io) {
  if (io == Io::Error) return Step::SinkClosed;
  return io == Io::Again ? Step::Paused : Step::More;
}

CgiOutputRelay::Step CgiOutputRelay::fail(std::string why) {
  error_ = std::move(why);
  phase_ = Phase::Failed;
  return Step::BadGateway;
}

}  // namespace spawnd::server
