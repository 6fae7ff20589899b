// Precompiled header of gateway/net: the heavy Asio, Beast and OpenSSL headers, parsed once.
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
