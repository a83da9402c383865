"""GraphQL vocabulary: Strawberry types, inputs and enums. Thin: it calls resolvers and never queries."""
