/// Topic name rules of Kafka 0.8.2 (`kafka.common.Topic`).
public enum TopicNames {
    public static let offsetsTopic = "__consumer_offsets"
    public static let maxLength = 255

    /// Returns a message saying what is wrong with the name, or nil when it is legal.
    public static func validationError(_ name: String) -> String? {
        if name.isEmpty { return "topic name is illegal, can't be empty" }
        if name == "." || name == ".." { return "topic name cannot be \".\" or \"..\"" }
        if name.utf8.count > maxLength { return "topic name is illegal, can't be longer than \(maxLength) characters" }
        for c in name.unicodeScalars {
            let ok = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-"
            if !ok { return "topic name \(name) is illegal, contains a character other than ASCII alphanumerics, '.', '_' and '-'" }
        }
        return nil
    }
}
