"""Hand-kept word lists the name detector needs beside Faker's locale data.

Lower-case, accent-folded. `FUNCTION_WORDS` are never names. `COMMON_WORDS` are English words
that are also names ("Will", "Young", "Server"): names only mid-sentence or next to another name,
and `GIVEN_NAME_WORDS` among them also as a sentence's subject ("Grace is coming"). Months,
weekdays and nationalities are names only right before a surname ("April Nguyen").
"""

from __future__ import annotations


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


FUNCTION_WORDS = _words(
    """
    a an the this that these those there here it its it's i me my mine myself you your yours we us
    our ours he him his she her hers they them their theirs who whom whose what which when where
    why how all any both each every either neither few many much more most other others another
    some such no nor not only own same so than too very just also and or but if then else because
    as until while of at by for with about against between into through during before after above
    below to from up down in out on off over under again further once am is are was were be been
    being have has had having do does did doing would should could ought shall might must
    can cannot can't won't don't didn't isn't wasn't aren't let's yes yeah yep yup nope nah ok okay
    oh ah uh um hmm lol lmao omg idk tbh btw fyi imo brb ty thx pls plz hi hey hello hiya bye
    thanks thank please sorry sure cool nice great good fine wow yay haha hehe well like get got
    go going gone come coming came see saw seen know knew think thought want need make made say
    said tell told ask asked call called text texted one two three four five six seven eight nine
    ten first last next new old big little long short today tonight tomorrow yesterday now later
    soon never always ever already still yet maybe perhaps really actually literally basically
    everyone everybody someone somebody anyone anybody nobody none nothing something anything
    everything guys folks team all everyone dear love xx xoxo cheers best regards kind sincerely
    per via re fw fwd subject from cc bcc sent reply mr mrs ms dr prof sir madam
    mom mum mommy mummy dad daddy mother father grandma grandpa granny nan nana papa mama sis bro
    babe baby bae hun hon honey sweetie darling
    """
)

# English words that are given names or surnames: "did Will call", "Grace is coming".
GIVEN_NAME_WORDS = _words(
    """
    will bill mark grace hope rose summer joy faith dawn sandy ray guy rich chase hunter holly
    ivy amber ruby lily iris pearl jade autumn crystal angel charity patience harmony melody
    destiny mercy lance dale glen cliff heath brook rocky rusty sunny dean drew miles max
    art bud frank jack nick rob pat sue don ken carol gene norm sky river storm winter star
    daisy poppy hazel olive violet penny candy misty ginger robin wren clay cole rod sterling
    reed page young white black green brown gray grey price hill wood woods park bell stone fox
    wolf bird lamb moss rice hall hunt ward wells banks burns rivers waters bishop lord swift
    sharp bright noble strong wise moon snow frost king cook baker miller smith porter barber
    carpenter mason fisher shepherd gardener turner weaver walker cross lane ford bush holt
    hale wade tate beck berry bond chance cash diamond justice major marshal christian lucky
    bonnie willow skye sage hero liberty raven sierra trinity scout sonny duke knight colt
    blaze grant forest
    """
)

# English words that are also names somewhere in the gazetteer ("Server" is Turkish, "Doctor"
# an Indian surname): names only mid-sentence, or next to another name. Collected from the
# gazetteer's overlap with English text (library docstrings) and chat vocabulary.
COMMON_WORDS = GIVEN_NAME_WORDS | _words(
    """
    ace add ade age ale alpha among amor ante april arts atlas august aura back bail ball bare
    basic bass bath bay beer begin bender best beta bien bins birch bliss block blossom blue
    bones boon bor bore branch brand bravo brewer brick bridge bridges buck bull bunny canny
    cant cap cara carrol carry casa case cases chad chai charset cherish cherry chi church
    clear close colon combs comfort comment company constant contra convey cookie coral corona
    cousin cousins cove cruz curry dam dane dash date day decimal dee deep delta den dev dick
    die din doc doctor doe dos dot dove drum each early echo edit else ember emit english era
    eta fair fall false fan fancy farmer fee fern ferry field fields fleur flint flood floor
    flowers floyd font foot forget fortune forum fraction freely freeman french frequently
    fresh friend gates general german glass gold golden gore grand graph gregorian gross guard
    gun hacker ham hammer hand handler handy happy hare harm harsh hart hawk hay hearty held
    hell helm hence herring hide hills hogg holder honor hood hook horn house hull india
    infinity innocent israel ivory jet job jude judge june junior junk key kick kidney killer
    kit lace lad lake language lavender law lean less lie line link lips list location lone
    long lot lotus love low lowe lower lyric mac mack mad made magic mall man manager mans
    marina marine marks mast master mate math may mayo meadow media merry meta mimi min minor
    model more mountain nail neo norm norma north nova oak ocean octave odd odds op orchard owe
    pace pages pan parent parts peace peacock per phoenix pi pike ping plank plaza pol poll pop
    post power powers precious press priest prima prince prior promise purity put queen
    questions rails rain ram rand ravel read reader real reason red refs renders repo rex ridge
    ring rio rock roll room roots rosy run rush rust ryder sad safari said saint sales salmon
    sane sang sans sari scan self sep serenity server seven sever shadow shaw shine short side
    silver sine singer singleton skip slater small smart sol sole solver sparks spring stack
    stark steer steward stock stormy story stout street sugar sunday sur sweet tab tan tank
    target tea tex theta ties tiger till tiny tone too topic tours toy trace trip true unique
    unity unknown unnamed urban vale valid value veer velvet verde vino visa vol wall walls
    warmer water watt way weeks west wild windows wit worth wright yoga york zen zeta
    """
)

MONTHS_DAYS = _words(
    """
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday christmas easter eid diwali hanukkah
    thanksgiving ramadan halloween jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues
    wed thu thur thurs fri sat sun
    """
)

NATIONALITIES = _words(
    """
    english british american canadian australian irish scottish welsh french german dutch danish
    swedish norwegian finnish polish czech russian ukrainian spanish portuguese italian greek
    turkish indian chinese japanese korean thai vietnamese filipino indonesian nigerian kenyan
    ghanaian mexican brazilian argentine christian muslim jewish hindu catholic latin arabic
    hindi urdu tamil punjabi bengali swahili yoruba igbo hausa zulu mandarin cantonese swiss
    austrian belgian european african asian
    """
)

# Capitalised nouns that turn a capitalised word before them into a place or brand:
# "Golden Gate Bridge", "Victoria Station", "Madison Square Garden".
ORG_PLACE_NOUNS = _words(
    """
    street road avenue lane bridge station square park hall university college school hospital
    airport center centre bank store shop cafe hotel church cathedral museum gallery stadium mall
    market room building tower memorial institute library theatre theater gate bay beach lake
    river mountain mountains island valley county city state inc ltd llc group company foundation
    garden gardens arena club pub restaurant bar grill kitchen studios studio records airlines
    airways hills heights falls springs point harbor harbour coast tunnel palace castle abbey
    """
)

PLACES = _words(
    """
    london paris berlin madrid rome lisbon dublin amsterdam brussels vienna zurich geneva oslo
    stockholm copenhagen helsinki warsaw prague budapest athens istanbul moscow kyiv dubai doha
    riyadh cairo lagos nairobi accra johannesburg capetown mumbai delhi bangalore bengaluru chennai
    kolkata hyderabad pune karachi lahore dhaka tokyo osaka kyoto seoul beijing shanghai shenzhen
    hongkong singapore bangkok manila jakarta sydney melbourne brisbane perth auckland toronto
    vancouver montreal ottawa chicago boston seattle denver austin dallas houston phoenix atlanta
    miami orlando detroit portland nashville memphis charlotte raleigh philadelphia baltimore
    pittsburgh cleveland columbus indianapolis milwaukee minneapolis sacramento oakland
    brooklyn manhattan queens bronx jersey york washington vegas
    florence venice milan naples turin munich hamburg frankfurt cologne stuttgart dresden leipzig
    lyon marseille nice bordeaux toulouse barcelona valencia seville porto manchester liverpool
    leeds glasgow edinburgh cardiff belfast bristol birmingham oxford cambridge york brighton
    victoria georgia virginia carolina dakota florida texas california madison jackson lincoln
    savannah charleston sydney chelsea kent devon cornwall derby lancaster hudson orleans
    lima santiago bogota quito caracas havana kingston
    jordan israel india china japan ireland spain poland france germany italy greece turkey egypt
    kenya nigeria ghana brazil chile peru mexico canada russia ukraine austria belgium norway
    sweden finland denmark portugal hungary romania bulgaria serbia croatia england scotland wales
    america africa europe asia australia maui hawaii bali kerala goa
    """
)

TITLES = _words(
    """
    mr mrs ms miss mx dr prof professor sir dame lady lord herr frau mme mlle monsieur madame sr
    sra srta signor signora aunt auntie aunty uncle coach captain capt officer father fr rabbi
    imam pastor judge senator mayor nurse detective agent sheikh
    """
)

# Titles followed by a surname ("Dr. Patel"); the others ("Aunty Funmi") by a first name.
SURNAME_TITLES = _words(
    """
    mr mrs ms miss mx dr prof professor herr frau mme mlle monsieur madame sr sra srta signor
    signora officer detective senator judge captain capt
    """
)

PARTICLES = _words("van der den de da di del della von la le du dos das bin ibn al el ter ten")

# Capitalised words that make the next one part of a place name: "São Paulo", "San Jose".
PLACE_PREFIXES = _words("san santa santo sao st saint los las new port fort mount rio porto puerto")

# Words after which a capitalised (or, for known/gazetteer names, lower-case) token is a person.
PERSON_CUES = _words(
    """
    hi hey hello hiya heya yo dear thanks thank thx ty congrats congratulations bye love miss
    met texted told tell ask asked invited messaged married dating dated ping
    friend bestie sister sis brother bro mom mum dad cousin aunt uncle boss roommate flatmate
    colleague coworker neighbour neighbor wife husband partner girlfriend boyfriend gf bf son
    daughter niece nephew grandma grandpa nan teacher landlord landlady manager
    """
)

# Verbs that make a sentence-initial capitalised word its subject: "Grace is coming", "Mark and I".
SUBJECT_VERBS = _words(
    """
    is was has had said says told asked wants wanted thinks thought texted called sent got made
    just will would can can't won't didn't doesn't isn't wasn't keeps kept loves hates needs says
    brought gave took went came left moved lives works replied wrote
    """
)

# After these verbs an unknown capitalised word is the one speaking: "Oluwadamilare said".
SPEECH_VERBS = _words("said says told asked texted wrote replied thinks")

# "in Paris", "to Jordan": a place that is also a name is a place after these.
LOCATION_PREPS = _words("in to from at near around outside visiting via of into")

# Mailbox names that identify nobody: kept, so "support@acme.com" reads "support@example.com".
ROLE_MAILBOXES = _words(
    """
    info support noreply reply hello admin contact office billing accounts accounting sales team
    hr jobs careers help service orders booking bookings reservations press media marketing
    enquiries inquiries mail webmaster postmaster security privacy legal finance invoices
    purchasing ops oncall tickets newsletter news events shop store
    """
)
