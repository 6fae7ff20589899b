// The one translation unit that compiles Asio, Asio's SSL support and Beast (separate compilation:
// BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION are set for gateway_net).
// Nothing else belongs here.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
