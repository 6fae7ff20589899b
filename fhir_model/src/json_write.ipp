// Template part of json.hpp: writes a DOM value to any RapidJSON writer, numbers as raw text.
#pragma once

namespace caregate::fhir::detail {

template <class Writer>
void write_value(Writer& out, const rapidjson::Value& value) {
    switch (value.GetType()) {
    case rapidjson::kNullType: out.Null(); break;
    case rapidjson::kFalseType: out.Bool(false); break;
    case rapidjson::kTrueType: out.Bool(true); break;
    case rapidjson::kNumberType: value.Accept(out); break; // only when a caller built one
    case rapidjson::kStringType:
        if (auto number = number_text(value))
            out.RawValue(number->data(), number->size(), rapidjson::kNumberType);
        else
            out.String(value.GetString(), value.GetStringLength());
        break;
    case rapidjson::kObjectType:
        out.StartObject();
        for (auto& member : value.GetObject()) {
            out.Key(member.name.GetString(), member.name.GetStringLength());
            write_value(out, member.value);
        }
        out.EndObject();
        break;
    case rapidjson::kArrayType:
        out.StartArray();
        for (auto& item : value.GetArray())
            write_value(out, item);
        out.EndArray();
        break;
    }
}

} // namespace caregate::fhir::detail
