// The query parameters of an admin request's target (admin/http_request.hpp): what the table route reads
// (?redirect=1, ?forwarded=1) from requests anyone can send.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "admin/http_request.hpp"

using mephisto::percent_decode;
using mephisto::percent_encode;
using mephisto::query_param;

TEST_CASE("query parameters: found by name, percent-decoded, absent when not there") {
    CHECK(query_param("/tables/t/k?redirect=1", "redirect") == "1");
    CHECK(query_param("/tables/t/k?a=1&redirect=yes&b=2", "redirect") == "yes");
    CHECK(query_param("/tables/t/k?forwarded", "forwarded") == "");  // present, empty
    CHECK(query_param("/tables/t/k?re%64irect=%31", "redirect") == "1");
    CHECK_FALSE(query_param("/tables/t/k", "redirect"));
    CHECK_FALSE(query_param("/tables/t/k?redirected=1", "redirect"));
    CHECK_FALSE(query_param("/tables/t/k?=1&&", "redirect"));
    CHECK(query_param("/x?a=1&a=2", "a") == "1");  // the first wins
    CHECK_FALSE(query_param("?", ""));
}

TEST_CASE("percent encoding: unreserved bytes stay, every other byte goes as %XX, and decodes back") {
    CHECK(percent_encode("k-1_a.b~") == "k-1_a.b~");
    CHECK(percent_encode("a/b c?&=%") == "a%2Fb%20c%3F%26%3D%25");
    const std::string bytes("\x00\xff\n\x7f", 4);
    CHECK(percent_encode(bytes) == "%00%FF%0A%7F");
    CHECK(percent_decode(percent_encode(bytes)) == bytes);
}
