"""Writes a JSON document into a C++ source file as raw string literal chunks (stdlib only).

Both generated files (definitions.cpp, search_parameters.cpp) are made this way: the C++ side joins
the chunks and parses the JSON once.
"""

import json

# A C++ raw string literal chunk; MSVC's limit is 16 KB a literal, GCC and Clang have none worth noting.
CHUNK = 16000


def write_embedded_json(data, out_path, symbol, delimiter, comment_lines, sort_keys=False):
    """Writes `data` as `const std::string_view {symbol}_chunks[]` and `{symbol}_chunk_count`."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True, sort_keys=sort_keys)
    chunks = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]
    for c in chunks:
        assert ")%s\"" % delimiter not in c
    lines = ["// " + line for line in comment_lines] + [
        "#include <string_view>",
        "",
        "namespace caregate::fhir::detail {",
        "",
        "extern const std::string_view %s_chunks[];" % symbol,
        "extern const unsigned %s_chunk_count;" % symbol,
        "",
        "const std::string_view %s_chunks[] = {" % symbol,
    ]
    for c in chunks:
        lines.append('    R"%s(%s)%s",' % (delimiter, c, delimiter))
    lines += [
        "};",
        "const unsigned %s_chunk_count = %d;" % (symbol, len(chunks)),
        "",
        "} // namespace caregate::fhir::detail",
        "",
    ]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
