// IKE/ESP proposal policy: strongSwan syntax, RFC 8247 defaults, weak-algorithm gate, selection.
export { parseProposal, parseProposals, formatProposal, describeProposal, isAeadTransform, withoutKeyExchange, ADDITIONAL_KE_NOT_NEGOTIATED, type PolicyProposal, type PolicyTransform, type SaProtocol, type ParseOptions } from './proposal.js';
export { DEFAULT_IKE_PROPOSALS, DEFAULT_ESP_PROPOSALS, defaultIkeProposals, defaultEspProposals } from './defaults.js';
export { selectProposal, checkProposalReply, describeOffered, isAdditionalKeyExchange, type OfferedProposal, type SelectedProposal, type Selection, type SelectOptions } from './select.js';
export { toSaProposals, selectedToSaProposal, fromSaProposal, ikeSuiteOf, childSuiteOf, dhGroupOf, esnOf, preferredDhGroup, acceptsDhGroup } from './convert.js';
export { KEYWORDS, keywordBySpelling, transformName, type Keyword, type KeywordStatus } from './keywords.js';
