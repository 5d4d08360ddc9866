#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/net_addr.h"

namespace spawnd::server {

namespace {

// Mozilla's server-side TLS guidelines v5.7, "intermediate": the TLS 1.2 suites (forward secret AEAD only) and the
// key-exchange groups; TLS 1.3 keeps OpenSSL's default suites, which are the same three the guidelines list.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* kIntermediateGroups = "X25519:prime256v1:secp384r1";
// The session ID context: sessions of one spawnd resume on any of its contexts (RFC 5246 §7.4.1.2).
constexpr unsigned char kSessionIdContext[] = "spawnd";

// OpenSSL's queued errors as one line ("error:0480006C:PEM routines::no start line; ..."), and the queue emptied.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// ALPN (RFC 7301 §3.2): spawnd speaks HTTP/1.1 only. A client that offers protocols but not http/1.1 gets no ALPN
// answer (the handshake goes on; such a client decides for itself), as nginx does.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned in_len,
                void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kHttp11, sizeof kHttp11, in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// One context: `cert` (PEM full chain) and `key`, with the protocol settings of the file comment and the session
// tickets of `tickets` (null: none). `what` names the setting for messages ("tls-cert", "[[site]] example.org:
// tls-cert").
SslCtxPtr make_context(const std::string& cert, const std::string& key, const std::string& what,
                       TicketKeys* tickets) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw Error("TLS: SSL_CTX_new: " + openssl_errors());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  // No renegotiation (TLS 1.2's client-initiated renegotiation is a DoS lever), no compression (CRIME), kTLS when
  // the kernel and the cipher allow it, and a client's TCP close without close_notify read as an ordinary EOF.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_ENABLE_KTLS |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
  // SSL_write may send part of a buffer, and the buffer may move between a WANT_WRITE and its retry (std::string).
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, kIntermediateCiphers) != 1 || SSL_CTX_set1_groups_list(c, kIntermediateGroups) != 1)
    throw Error("TLS: cipher settings: " + openssl_errors());
  SSL_CTX_set_dh_auto(c, 1);  // DHE suites use the RFC 7919 group matching the certificate's strength
  SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
  if (tickets != nullptr) {
    tickets->install(c);
  } else {
    // No tickets at all: neither TLS 1.2's (SSL_OP_NO_TICKET alone would still resume TLS 1.2 by session ID, which
    // stays) nor TLS 1.3's (with SSL_OP_NO_TICKET alone, OpenSSL would send stateful tickets from its cache).
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1)
    throw ConfigError(what + " " + cert + ": " + openssl_errors());
  const std::string key_what = what.substr(0, what.rfind("tls-cert")) + "tls-key";
  if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    const bool is_mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    throw ConfigError(key_what + " " + key + (is_mismatch ? " does not match " + what + " " + cert : std::string()) +
                      ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(c) != 1)
    throw ConfigError(key_what + " " + key + " does not match " + what + " " + cert + ": " + openssl_errors());
  return ctx;
}

}  // namespace

TicketKeys::TicketKeys(long lifetime_s) : lifetime_s_(lifetime_s) {
  cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (cipher_ == nullptr || !make_key(keys_[0])) throw Error("TLS: session ticket key: " + openssl_errors());
}

TicketKeys::~TicketKeys() {
  OPENSSL_cleanse(keys_, sizeof keys_);
  EVP_CIPHER_free(cipher_);
}

bool TicketKeys::make_key(Key& key) {
  return RAND_bytes(key.name, sizeof key.name) == 1 && RAND_priv_bytes(key.aes_key, sizeof key.aes_key) == 1 &&
         RAND_priv_bytes(key.hmac_key, sizeof key.hmac_key) == 1;
}

bool TicketKeys::rotate() {
  Key next;
  if (!make_key(next)) {
    OPENSSL_cleanse(&next, sizeof next);
    SPAWND_LOG_ERROR("TLS: new session ticket key: %s; the current one stays", openssl_errors().c_str());
    return false;
  }
  keys_[1] = keys_[0];  // overwrites (wipes) the previous key
  keys_[0] = next;
  OPENSSL_cleanse(&next, sizeof next);
  has_previous_ = true;
  return true;
}

void TicketKeys::install(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, 0, this);  // what on_ticket finds through the SSL (SSL_CTX_set_app_data spelled out)
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
  SSL_CTX_set_timeout(ctx, lifetime_s_);  // the session's lifetime: the ticket lifetime hint
}

int TicketKeys::on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                          EVP_MAC_CTX* mac, int enc) {
  // The ring of whichever context the connection has now (SNI may have switched it): every context has the same.
  auto* self = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0));
  if (self == nullptr) return enc ? -1 : 0;
  const auto hmac_with = [mac](const Key& key) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac_key),
                                          sizeof key.hmac_key),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(mac, params) == 1;
  };
  const int iv_bytes = EVP_CIPHER_get_iv_length(self->cipher_);
  if (enc) {
    const Key& key = self->keys_[0];
    if (RAND_bytes(iv, iv_bytes) != 1) return -1;
    std::memcpy(key_name, key.name, kNameBytes);
    if (EVP_EncryptInit_ex2(cipher, self->cipher_, key.aes_key, iv, nullptr) != 1 || !hmac_with(key)) return -1;
    return 1;
  }
  for (int i = 0; i < (self->has_previous_ ? 2 : 1); ++i) {
    const Key& key = self->keys_[i];
    if (CRYPTO_memcmp(key_name, key.name, kNameBytes) != 0) continue;
    if (EVP_DecryptInit_ex2(cipher, self->cipher_, key.aes_key, iv, nullptr) != 1 || !hmac_with(key)) return -1;
    return i == 0 ? 1 : 2;  // 2: sealed with the previous key, so the client gets a ticket of the current one
  }
  return 0;  // a retired key (or another server's): a full handshake
}

TlsContexts::TlsContexts(const Config& config, std::shared_ptr<TicketKeys> ticket_keys)
    : ticket_keys_(std::move(ticket_keys)) {
  if (config.tls_cert.empty() || config.tls_key.empty())
    throw ConfigError(
        (config.tls_listen.empty() ? std::string("HTTPS") : "tls-listen " + config.tls_listen) +
        " needs tls-cert and tls-key");
  default_ = make_context(config.tls_cert, config.tls_key, "tls-cert", ticket_keys_.get());
  // SSL_CTX_set_tlsext_servername_callback() spelled out: the macro's C cast trips -Wold-style-cast.
  SSL_CTX_callback_ctrl(default_.get(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, reinterpret_cast<void (*)()>(on_servername));
  SSL_CTX_set_tlsext_servername_arg(default_.get(), this);
  if (!config.tls_ocsp_response.empty()) staple(default_.get(), config.tls_ocsp_response, "tls-ocsp-response");
  for (const SiteConfig& site : config.sites) {
    const Config& s = site.settings;
    // A [[site]] starts from the top level's settings: the same files mean the top-level certificate.
    if (s.tls_cert == config.tls_cert && s.tls_key == config.tls_key) continue;
    const std::string name = site.hosts.empty() ? "?" : site.hosts.front();
    if (s.tls_cert.empty() || s.tls_key.empty())
      throw ConfigError("[[site]] " + name + ": tls-cert and tls-key go together");
    SSL_CTX* ctx = site_contexts_.emplace_back(make_context(s.tls_cert, s.tls_key, "[[site]] " + name + ": tls-cert",
                                                                   ticket_keys_.get()))
                       .get();
    for (const std::string& host : site.hosts) by_host_.emplace(host, ctx);
    if (!s.tls_ocsp_response.empty() && s.tls_ocsp_response != config.tls_ocsp_response)
      staple(ctx, s.tls_ocsp_response, "[[site]] " + name + ": tls-ocsp-response");
  }
}

int TlsContexts::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const TlsContexts*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the top-level certificate
  auto it = self->by_host_.find(net::host_name_key(name));
  if (it != self->by_host_.end()) SSL_set_SSL_CTX(ssl, it->second);
  return SSL_TLSEXT_ERR_OK;  // an unknown name: the top-level certificate, not an alert
}

void TlsContexts::staple(SSL_CTX* ctx, const std::string& file, const std::string& what) {
  ERR_clear_error();
  BIO* bio = BIO_new_file(file.c_str(), "rb");
  OCSP_RESPONSE* response = bio != nullptr ? d2i_OCSP_RESPONSE_bio(bio, nullptr) : nullptr;
  BIO_free(bio);
  if (response == nullptr) throw ConfigError(what + " " + file + ": " + openssl_errors());
  const std::unique_ptr<OCSP_RESPONSE, decltype(&OCSP_RESPONSE_free)> owned(response, OCSP_RESPONSE_free);
  const int status = OCSP_response_status(response);
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
    throw ConfigError(what + " " + file + ": the response's status is " + OCSP_response_status_str(status) +
                      ", not successful");
  // It must speak of this certificate: its CertID (RFC 6960 §4.1.1) is made from the certificate and its issuer.
  X509* cert = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  X509* issuer = nullptr;
  for (int i = 0; i < sk_X509_num(chain) && issuer == nullptr; ++i)
    if (X509_check_issued(sk_X509_value(chain, i), cert) == X509_V_OK) issuer = sk_X509_value(chain, i);
  if (issuer == nullptr)
    throw ConfigError(what + " " + file + ": the issuer of the certificate is not in its chain file, so the response "
                      "cannot be matched to it");
  const std::unique_ptr<OCSP_BASICRESP, decltype(&OCSP_BASICRESP_free)> basic(OCSP_response_get1_basic(response),
                                                                             OCSP_BASICRESP_free);
  const std::unique_ptr<OCSP_CERTID, decltype(&OCSP_CERTID_free)> id(OCSP_cert_to_id(nullptr, cert, issuer),
                                                                     OCSP_CERTID_free);
  int cert_status = -1;
  if (!basic || !id ||
      OCSP_resp_find_status(basic.get(), id.get(), &cert_status, nullptr, nullptr, nullptr, nullptr) != 1)
    throw ConfigError(what + " " + file + ": not a response about the certificate it goes with");
  ERR_clear_error();
  unsigned char* der = nullptr;
  const int length = i2d_OCSP_RESPONSE(response, &der);
  if (length <= 0) throw Error("TLS: " + what + " " + file + ": " + openssl_errors());
  const std::string* bytes =
      ocsp_responses_.emplace_back(std::make_unique<const std::string>(reinterpret_cast<char*>(der),
                                                                       static_cast<std::size_t>(length)))
          .get();
  OPENSSL_free(der);
  // SSL_CTX_set_tlsext_status_cb() and _arg() spelled out: the macros' C casts trip -Wold-style-cast.
  SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB, reinterpret_cast<void (*)()>(on_status_request));
  SSL_CTX_ctrl(ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB_ARG, 0, const_cast<std::string*>(bytes));
  SPAWND_LOG_INFO("TLS: %s %s: stapled (certificate status %s)", what.c_str(), file.c_str(),
                  OCSP_cert_status_str(cert_status));
}

int TlsContexts::on_status_request(SSL* ssl, void* arg) {
  const auto* response = static_cast<const std::string*>(arg);
  // OpenSSL frees what it is given: a copy per handshake.
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(response->data(), response->size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP, static_cast<long>(response->size()), copy);
  return SSL_TLSEXT_ERR_OK;
}

bool TlsContexts::kernel_has_ktls() noexcept { return ::access("/proc/net/tls_stat", F_OK) == 0; }

// ---- TlsStream ----

TlsStream::TlsStream(std::shared_ptr<const TlsContexts> contexts, int socket) : contexts_(std::move(contexts)) {
  ssl_ = SSL_new(contexts_->default_context());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, socket) != 1) {
    SSL_free(ssl_);
    throw Error("TLS: SSL_new: " + openssl_errors());
  }
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

Io TlsStream::after_error(int ret, const char* what) {
  const int saved_errno = errno;
  const int error = SSL_get_error(ssl_, ret);
  switch (error) {
    case SSL_ERROR_WANT_READ: wants_read_ = true; return Io::Again;
    case SSL_ERROR_WANT_WRITE: wants_write_ = true; return Io::Again;
    case SSL_ERROR_ZERO_RETURN: return Io::Eof;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      is_shut_down_ = true;  // after a fatal error, no SSL_shutdown (OpenSSL's rule)
      if (saved_errno == 0) return Io::Eof;  // a TCP close
      errno = saved_errno;
      return Io::Error;
    default: {
      is_shut_down_ = true;
      const unsigned long first = ERR_peek_error();
      is_plain_http_request_ = ERR_GET_LIB(first) == ERR_LIB_SSL && (ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST ||
                                                                     ERR_GET_REASON(first) == SSL_R_HTTPS_PROXY_REQUEST);
      SPAWND_LOG_DEBUG("TLS %s: %s", what, openssl_errors().c_str());
      errno = EPROTO;
      return Io::Error;
    }
  }
}

Io TlsStream::read(char* buf, std::size_t capacity, std::size_t& got) {
  wants_read_ = wants_write_ = false;
  got = 0;
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_read_ex(ssl_, buf, capacity, &got);
  if (ret == 1) return Io::Done;
  return after_error(ret, is_established() ? "read" : "handshake");
}

Io TlsStream::write(std::string_view data, std::size_t& sent) {
  wants_read_ = wants_write_ = false;
  sent = 0;
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_write_ex(ssl_, data.data(), data.size(), &sent);
  if (ret == 1) return Io::Done;
  return after_error(ret, "write");
}

Io TlsStream::sendfile(int file, std::uint64_t offset, std::size_t length, std::size_t& sent) {
  wants_read_ = wants_write_ = false;
  sent = 0;
  ERR_clear_error();
  errno = 0;
  const ossl_ssize_t n = SSL_sendfile(ssl_, file, static_cast<off_t>(offset), length, 0);
  if (n > 0) {
    sent = static_cast<std::size_t>(n);
    return Io::Done;
  }
  if (n == 0) return Io::Eof;
  if (errno == EAGAIN || SSL_get_error(ssl_, -1) == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    wants_write_ = true;
    return Io::Again;
  }
  return after_error(-1, "sendfile");
}

void TlsStream::shutdown() noexcept {
  if (is_shut_down_ || !is_established()) return;
  is_shut_down_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // sends close_notify if the socket takes it; the client's is never waited for
  ERR_clear_error();
}

bool TlsStream::has_ktls_send() const noexcept { return BIO_get_ktls_send(SSL_get_wbio(ssl_)) == 1; }

}  // namespace spawnd::server
