#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <regex>

#include "crypto/hash.h"
#include "sync/protocol.h"
#include "sync/transport.h"

namespace irt::sync {

namespace {

struct Url {
  bool tls = false;
  std::string host;
  int port = 0;
};

shared::Result<Url> parse_url(const std::string& url) {
  static const std::regex re(R"(^(https?)://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?/?$)");
  std::smatch m;
  int port = 0;
  if (std::regex_match(url, m, re)) port = m[3].matched ? std::stoi(m[3]) : (m[1] == "https" ? 443 : 80);
  if (port < 1 || port > 65535)
    return shared::make_error(shared::Errc::invalid_input, "hub URL '" + url +
                                                               "' is not of the form https://HOST[:PORT] or "
                                                               "http://HOST[:PORT] (PORT 1 to 65535)");
  return Url{m[1] == "https", m[2], port};
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(const HttpTransportOptions& o, Url url) : options_(o), url_(std::move(url)) {
    if (url_.tls) {
      auto ssl = std::make_unique<httplib::SSLClient>(url_.host, url_.port);
      // httplib's own check wants a CA chain and a matching host name; the hub's
      // certificate is self-signed, so we replace chain verification with the pin.
      ssl->enable_server_certificate_verification(false);
      SSL_CTX* ctx = ssl->ssl_context();
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_cert_verify_callback(ctx, &HttpTransport::check_pin, this);
      client_ = std::move(ssl);
    } else {
      client_ = std::make_unique<httplib::ClientImpl>(url_.host, url_.port);
    }
    client_->set_connection_timeout(o.connect_timeout_s, 0);
    client_->set_read_timeout(o.read_timeout_s, 0);
    client_->set_write_timeout(o.read_timeout_s, 0);
    client_->set_keep_alive(true);
    client_->set_tcp_nodelay(true);  // a batch is one write; do not wait for delayed ACKs
  }

  shared::Result<HttpResponse> post(const std::string& path, const std::string& content_type, const std::string& body,
                                    const std::map<std::string, std::string>& headers) override {
    httplib::Headers h(headers.begin(), headers.end());
    pin_mismatch_.clear();
    return convert(client_->Post(path.c_str(), h, body, content_type.c_str()));
  }

  shared::Result<HttpResponse> get(const std::string& path) override {
    pin_mismatch_.clear();
    return convert(client_->Get(path.c_str()));
  }

 private:
  static int check_pin(X509_STORE_CTX* store, void* arg) {
    auto* self = static_cast<HttpTransport*>(arg);
    X509* cert = X509_STORE_CTX_get0_cert(store);
    if (!cert) return 0;
    unsigned char* der = nullptr;
    int len = i2d_X509(cert, &der);
    if (len <= 0) return 0;
    auto fp = crypto::sha256({der, static_cast<std::size_t>(len)}).hex();
    OPENSSL_free(der);
    if (fp == self->options_.fingerprint_hex) return 1;
    self->pin_mismatch_ = fp;
    return 0;
  }

  shared::Result<HttpResponse> convert(const httplib::Result& r) {
    if (!pin_mismatch_.empty())
      return shared::make_error(shared::Errc::integrity,
                                "the hub at " + options_.base_url + " presented certificate fingerprint " +
                                    pin_mismatch_ + ", not the pinned " + options_.fingerprint_hex +
                                    "; check the hub URL, or the fingerprint given at enrollment");
    if (!r)
      return shared::make_error(shared::Errc::unavailable,
                                "cannot reach the hub at " + options_.base_url + " (" + httplib::to_string(r.error()) +
                                    "); everything is kept and will be sent at the next sync");
    // A hub time that is not a number is ignored: it only times the node's next request.
    std::int64_t hub_time = 0;
    const auto text = r->get_header_value(kHubTimeHeader);
    std::from_chars(text.data(), text.data() + text.size(), hub_time);
    return HttpResponse{r->status, r->body, r->get_header_value("Content-Type"), hub_time};
  }

  HttpTransportOptions options_;
  Url url_;
  std::unique_ptr<httplib::ClientImpl> client_;
  std::string pin_mismatch_;
};

}  // namespace

shared::Result<std::unique_ptr<Transport>> make_http_transport(const HttpTransportOptions& options) {
  auto url = parse_url(options.base_url);
  if (!url) return url.error();
  if (url->tls && !crypto::Hash::from_hex(options.fingerprint_hex))
    return shared::make_error(shared::Errc::invalid_input,
                              "the https hub URL " + options.base_url +
                                  " needs the hub's certificate fingerprint: the 64 hex digits printed by "
                                  "'irt-hub fingerprint'");
  if (!url->tls && !is_loopback_host(url->host))
    return shared::make_error(shared::Errc::invalid_input,
                              "the hub URL " + options.base_url +
                                  " is plain http:// to a host that is not loopback; use https:// with the hub's "
                                  "fingerprint (http:// only to 127.0.0.1, ::1 or localhost)");
  return std::unique_ptr<Transport>(std::make_unique<HttpTransport>(options, std::move(url).value()));
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  static const std::regex v4(R"(^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$)");
  return std::regex_match(host.begin(), host.end(), v4);
}

std::string describe_refusal(const HttpResponse& r) {
  try {
    auto j = nlohmann::json::parse(r.body);
    const auto& e = j.at("error");
    return e.value("message", std::string("refused")) + " [" + e.value("code", std::string("?")) + ", HTTP " +
           std::to_string(r.status) + "]";
  } catch (const std::exception&) {
    return "the hub answered HTTP " + std::to_string(r.status) + " without an error description";
  }
}

}  // namespace irt::sync
