/* An LD_PRELOAD shim that makes wrk present a TLS client certificate, which wrk itself cannot: caregate's
 * provider listener (and the ceiling probe) refuse a handshake without one. wrk makes one SSL_CTX at
 * start; this wraps SSL_CTX_new and loads the certificate chain and key named by WRK_CLIENT_CERT and
 * WRK_CLIENT_KEY into it. Nothing else of wrk's TLS changes. A certificate that cannot be loaded stops
 * wrk, so that a run never measures refused handshakes.
 *
 *   cc -shared -fPIC -O2 -o client_cert.so bench/wrk/client_cert.c -ldl -lssl
 *   WRK_CLIENT_CERT=client.crt WRK_CLIENT_KEY=client.key LD_PRELOAD=./client_cert.so wrk https://...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

SSL_CTX* SSL_CTX_new(const SSL_METHOD* method) {
    SSL_CTX* (*real)(const SSL_METHOD*) = (SSL_CTX * (*)(const SSL_METHOD*)) dlsym(RTLD_NEXT, "SSL_CTX_new");
    SSL_CTX* context = real(method);
    const char* cert = getenv("WRK_CLIENT_CERT");
    const char* key = getenv("WRK_CLIENT_KEY");
    if (!context || !cert || !key)
        return context;
    if (SSL_CTX_use_certificate_chain_file(context, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(context) != 1) {
        fprintf(stderr, "client_cert.so: cannot load the client certificate %s with key %s\n", cert, key);
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    return context;
}
