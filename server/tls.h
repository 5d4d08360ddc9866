// server/tls.h — TLS termination with OpenSSL 3: the server's certificates (TlsContexts) and one connection's TLS
// layer (TlsStream), non-blocking inside the event loop.
//
// TlsContexts is what one configuration generation says about TLS: the top-level --tls-cert/--tls-key, and the
// certificate of each [[site]] that has its own, chosen by the name the client sends in its ClientHello (SNI, RFC
// 6066 §3); a name no site with a certificate lists, or none, gets the top-level certificate. Every context speaks
// TLS 1.2 and 1.3 only, with Mozilla's "intermediate" cipher suites (server-side TLS guidelines v5.7), ALPN
// "http/1.1" (RFC 7301), session resumption by tickets (RFC 8446 §4.6.1, RFC 5077) sealed with the keys of one
// TicketKeys ring and by the session cache, and asks for kernel TLS (SSL_OP_ENABLE_KTLS) so that static files can
// still go out with sendfile(2). SIGHUP builds a new TlsContexts over the same TicketKeys (so a reload ends no
// session); an SSL object holds a reference to its SSL_CTX, so an established connection keeps the certificate it
// was made with.
//
// OCSP stapling (RFC 6066 §8, RFC 6960): a context whose certificate has a --tls-ocsp-response file sends that DER
// response, read when the context is made (so again at every SIGHUP), to clients that ask for one. spawnd never
// queries a responder itself (nginx's ssl_stapling_file, not its ssl_stapling).
//
// TicketKeys is the key ring that seals session tickets (RFC 5077 §4's recommended construction: a 16-byte key
// name, AES-256-CBC, HMAC-SHA256), one for the whole process: every context of every configuration generation uses
// it. rotate() (the server calls it every --tls-ticket-key-rotation) makes a new key the one that seals new tickets
// and keeps the one before it for opening tickets only; the key before that is wiped. A ticket is thus accepted for
// one to two rotation periods after it was issued, and one opened with the previous key is renewed (the client gets
// a ticket sealed with the current key). Keys live in memory only, from RAND_bytes: a restart ends every session.
//
// TlsStream is one connection's TLS state over its non-blocking socket: the handshake runs implicitly within the
// first read() (SSL_accept state); read() and write() report what OpenSSL wants next (a readable or a writable
// socket) so that the connection can set its epoll interest, and never block. Loop thread only.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "server/config.h"

namespace spawnd::server {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

class TicketKeys {
 public:
  // A ring holding one key, fresh from RAND_bytes; `lifetime_s` is what clients are told a ticket lives (the ticket
  // lifetime hint, RFC 8446 §4.6.1 and RFC 5077 §3.3; and the session timeout): about two rotation periods. Throws
  // spawnd::Error if OpenSSL's random generator or its AES-256-CBC fail.
  explicit TicketKeys(long lifetime_s);
  ~TicketKeys();  // wipes the keys (OPENSSL_cleanse)
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // A new key seals tickets from now on; the current one only opens them; the previous one is wiped. If RAND_bytes
  // fails, logs it and keeps the keys as they are (returns false). Loop thread only (OpenSSL calls seal/open
  // within SSL_read, on the loop thread too).
  bool rotate();
  // Makes `ctx`'s tickets sealed and opened with this ring (SSL_CTX_set_tlsext_ticket_key_evp_cb), with the
  // lifetime hint. The ring must outlive `ctx` (TlsContexts holds it).
  void install(SSL_CTX* ctx);

 private:
  static constexpr std::size_t kNameBytes = 16;  // RFC 5077 §4: key_name
  struct Key {
    unsigned char name[kNameBytes];
    unsigned char aes_key[32];   // AES-256-CBC
    unsigned char hmac_key[32];  // HMAC-SHA256
  };
  // OpenSSL's ticket callback: `enc` 1 seals (returns 1), 0 opens (1: the current key, 2: the previous one, renew;
  // 0: no key of that name, a full handshake); -1 on an OpenSSL failure.
  static int on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                       EVP_MAC_CTX* mac, int enc);
  [[nodiscard]] static bool make_key(Key& key);

  Key keys_[2]{};  // [0] seals and opens, [1] (when has_previous_) opens only
  bool has_previous_ = false;
  long lifetime_s_;
  EVP_CIPHER* cipher_ = nullptr;  // AES-256-CBC, fetched once
};

class TlsContexts {
 public:
  // Loads the certificates of `config` (config.tls_cert, config.tls_key; and each [[site]]'s own tls_cert/tls_key,
  // when they differ from the top level's). A certificate file is PEM: the server's certificate first, then its
  // intermediates (the full chain); the key a PEM private key matching it. Throws spawnd::ConfigError naming the
  // key, the file and OpenSSL's reason when a file cannot be read, does not parse, or the key does not match.
  // A --tls-ocsp-response must be a successful OCSP response with a status for the certificate it goes with (whose
  // issuer must be in the chain file); otherwise ConfigError naming both files. A [[site]] staples its own
  // tls-ocsp-response only: it does not inherit the top level's, which is about another certificate.
  // `ticket_keys` seal the session tickets of every context (null: no tickets at all, --tls-ticket-key-rotation 0:
  // a TLS 1.3 session does not resume, a TLS 1.2 one only by its session ID from the session cache).
  TlsContexts(const Config& config, std::shared_ptr<TicketKeys> ticket_keys);
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // The context new connections start with (the top-level certificate); its SNI callback switches to a site's.
  [[nodiscard]] SSL_CTX* default_context() const noexcept { return default_.get(); }
  // How many certificates are loaded (the top level's and the sites' own), for log lines.
  [[nodiscard]] std::size_t certificate_count() const noexcept { return 1 + site_contexts_.size(); }

  // Whether the kernel offers TLS offload at all (its tls module: /proc/net/tls_stat exists). OpenSSL still decides
  // per connection, after the handshake (cipher, version): TlsStream::has_ktls_send().
  [[nodiscard]] static bool kernel_has_ktls() noexcept;

 private:
  // SSL_CTX_set_tlsext_servername_callback: SNI → the site's context.
  static int on_servername(SSL* ssl, int* alert, void* arg);
  // SSL_CTX_set_tlsext_status_cb: staples the context's OCSP response (`arg`: a std::string of DER).
  static int on_status_request(SSL* ssl, void* arg);
  // Reads `file` (what: the setting's name, for messages), checks it is about `ctx`'s certificate, and makes `ctx`
  // staple it. Throws ConfigError.
  void staple(SSL_CTX* ctx, const std::string& file, const std::string& what);

  // What the contexts' callbacks point at, declared before the contexts so that it outlives them.
  std::shared_ptr<TicketKeys> ticket_keys_;
  std::vector<std::unique_ptr<const std::string>> ocsp_responses_;  // DER; the status callbacks' arguments
  SslCtxPtr default_;
  std::vector<SslCtxPtr> site_contexts_;
  std::unordered_map<std::string, SSL_CTX*> by_host_;  // lower-case host name → one of site_contexts_
};

class TlsStream {
 public:
  // A server-side TLS connection over `socket` (non-blocking, owned by the caller), starting with `contexts`'s
  // default context. `contexts` is kept alive as long as the stream (its SNI callback uses it during the handshake).
  // Throws spawnd::Error if OpenSSL cannot make the SSL object (out of memory).
  TlsStream(std::shared_ptr<const TlsContexts> contexts, int socket);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Reads decrypted bytes (running the handshake first, if it is not done). Io::Done with `got` > 0; Io::Again when
  // the socket has nothing more (or the handshake waits on a writable socket: wants_write()); Io::Eof on the client's
  // close_notify or a TCP close; Io::Error on a TLS failure (bad handshake, wrong protocol, a bad record) or a
  // socket error: the connection should close.
  [[nodiscard]] Io read(char* buf, std::size_t capacity, std::size_t& got);
  // Encrypts and sends up to `data.size()` bytes. Io::Done with `sent` > 0 (possibly fewer than asked: partial
  // writes are on); Io::Again when the socket is full (or the stream waits on a readable socket: wants_read()). A
  // retried write must offer the same bytes again (OpenSSL's rule), at least as many. Io::Error: the connection
  // should close.
  [[nodiscard]] Io write(std::string_view data, std::size_t& sent);
  // With kernel TLS for sending (has_ktls_send()): sends up to `length` bytes of `file` from `offset` with
  // sendfile(2), the kernel encrypting them. Io::Done with `sent` > 0, Io::Again, Io::Eof (the file ended), Io::Error.
  [[nodiscard]] Io sendfile(int file, std::uint64_t offset, std::size_t length, std::size_t& sent);
  // Sends close_notify (RFC 8446 §6.1), once, without waiting for the client's: before a half-close or a close.
  void shutdown() noexcept;

  // The last read() or write() returned Io::Again because OpenSSL waits for the socket to become writable (a read
  // in the handshake) or readable (a write during a key update).
  [[nodiscard]] bool wants_write() const noexcept { return wants_write_; }
  [[nodiscard]] bool wants_read() const noexcept { return wants_read_; }
  // Whether OpenSSL holds bytes read from the socket and not yet returned by read() (SSL_has_pending): epoll cannot
  // tell about those.
  [[nodiscard]] bool has_pending() const noexcept { return SSL_has_pending(ssl_) == 1; }
  // Whether the handshake has completed.
  [[nodiscard]] bool is_established() const noexcept { return SSL_is_init_finished(ssl_) == 1; }
  // Whether the last Io::Error came from a plain HTTP request where the ClientHello belongs: OpenSSL's record layer
  // saw "GET ", "POST", "HEAD", "PUT " or "CONNE" (SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST) and consumed only
  // the 5 bytes of a record header; the rest of the request is still in the socket. The connection may then answer
  // in plain HTTP, as nginx does (its 497 → 400), after destroying this stream.
  [[nodiscard]] bool is_plain_http_request() const noexcept { return is_plain_http_request_; }
  // Whether the kernel encrypts what this connection sends (kTLS: SSL_OP_ENABLE_KTLS took effect).
  [[nodiscard]] bool has_ktls_send() const noexcept;
  // "TLSv1.3", "TLSv1.2": the negotiated protocol (for the access log).
  [[nodiscard]] const char* protocol() const noexcept { return SSL_get_version(ssl_); }

 private:
  [[nodiscard]] Io after_error(int ret, const char* what);

  std::shared_ptr<const TlsContexts> contexts_;
  SSL* ssl_ = nullptr;
  bool wants_read_ = false;
  bool wants_write_ = false;
  bool is_shut_down_ = false;
  bool is_plain_http_request_ = false;
};

}  // namespace spawnd::server
