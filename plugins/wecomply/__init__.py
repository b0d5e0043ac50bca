"""WeComply: policies, attestations and grounded Q&A over source-of-truth documents."""
